import './base.css';
import './catalogue.css';
import './audit.css';
import './review.css';
