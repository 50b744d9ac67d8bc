import './base.css';
import './catalogue.css';
